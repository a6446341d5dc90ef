module wasmgen.local/request-guard

go 1.22
