module wasmgen.local/echo-request

go 1.22
