module wasmgen.local/clean-query

go 1.22
