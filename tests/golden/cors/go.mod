module wasmgen.local/api-cors

go 1.22
