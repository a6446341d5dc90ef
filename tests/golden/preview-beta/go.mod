module wasmgen.local/preview-beta

go 1.22
