module example.com/wasmgen/buildfixtures/gotest

go 1.24
