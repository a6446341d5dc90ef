module wasmgen.local/https-location

go 1.22
