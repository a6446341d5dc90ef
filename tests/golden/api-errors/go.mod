module wasmgen.local/api-errors

go 1.22
