module wasmgen.test/gofloor

go 1.22
