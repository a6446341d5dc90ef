module wasmgen.local/secure-gateway

go 1.22
