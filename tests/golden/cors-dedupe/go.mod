module wasmgen.local/cors-dedupe

go 1.22
