module wasmgen.local/tests/plugins/rawabi

go 1.24
