module wasmgen.local/internal-debug

go 1.22
