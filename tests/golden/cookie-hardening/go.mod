module wasmgen.local/cookie-hardening

go 1.22
