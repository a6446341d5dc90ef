module wasmgen.local/tracking-cookies

go 1.22
