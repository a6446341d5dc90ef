// Command gofloor is the least a plugin built with upstream Go can be that sets the lab's two
// response headers: the exports Envoy needs and one host function, no SDK, no per-stream state.
// In Envoy it costs what the Go runtime costs (compiling it, three instances per worker, entering
// it), the floor under any upstream-Go plugin; tests/benchmark_envoy.py measures it beside the
// WAT floor and wasmgen's plugins. The same source built by TinyGo 0.33 (which reads //export;
// upstream Go reads //go:wasmexport) is the TinyGo floor.
package main

import "unsafe"

//go:wasmimport env proxy_replace_header_map_value
func replaceHeader(mapType uint32, kp *byte, kl uint32, vp *byte, vl uint32) uint32

const responseHeaders = 2

var pairs = [][2]string{{"header_1", "first_header"}, {"header_2", "second_header"}}

// held keeps the buffers the host fills alive; the module reads none of them.
var held [][]byte

//go:wasmexport proxy_abi_version_0_2_1
//export proxy_abi_version_0_2_1
func abiVersion() {}

//go:wasmexport proxy_on_memory_allocate
//export proxy_on_memory_allocate
func onMemoryAllocate(size uint32) *byte {
	buf := make([]byte, size+1) // never empty, so &buf[0] is valid
	held = append(held, buf)
	return &buf[0]
}

//go:wasmexport proxy_on_vm_start
//export proxy_on_vm_start
func onVMStart(rootID, size uint32) bool { return true }

//go:wasmexport proxy_on_configure
//export proxy_on_configure
func onConfigure(rootID, size uint32) bool {
	held = nil // the configuration was delivered; nothing keeps it
	return true
}

//go:wasmexport proxy_on_context_create
//export proxy_on_context_create
func onContextCreate(id, parentID uint32) {}

//go:wasmexport proxy_on_response_headers
//export proxy_on_response_headers
func onResponseHeaders(id, headers uint32, endOfStream bool) uint32 {
	for _, p := range pairs {
		replaceHeader(responseHeaders, unsafe.StringData(p[0]), uint32(len(p[0])),
			unsafe.StringData(p[1]), uint32(len(p[1])))
	}
	return 0 // Continue
}

func main() {}
