// Command rawabi is a test plugin written straight against the proxy-wasm ABI (no SDK).
//
// Its plugin configuration is a small script, one command per line:
//
//	<phase> <op> [args...]
//
// phase is "configure", "req" or "resp"; the ops are documented in run below.
// Results of "get", "prop", "poll", "random", ... are added as headers to the
// current phase's header map, so a test can read them back.
package main

import (
	"strconv"
	"strings"
	"syscall"
	"unsafe"
)

//go:wasmimport env proxy_log
func proxyLog(level uint32, ptr *byte, size uint32) uint32

//go:wasmimport env proxy_get_buffer_bytes
func proxyGetBufferBytes(typ, start, maxSize uint32, retPtr unsafe.Pointer, retSize *uint32) uint32

//go:wasmimport env proxy_add_header_map_value
func proxyAddHeader(mapType uint32, kp *byte, kl uint32, vp *byte, vl uint32) uint32

//go:wasmimport env proxy_replace_header_map_value
func proxyReplaceHeader(mapType uint32, kp *byte, kl uint32, vp *byte, vl uint32) uint32

//go:wasmimport env proxy_remove_header_map_value
func proxyRemoveHeader(mapType uint32, kp *byte, kl uint32) uint32

//go:wasmimport env proxy_get_header_map_value
func proxyGetHeader(mapType uint32, kp *byte, kl uint32, retPtr unsafe.Pointer, retSize *uint32) uint32

//go:wasmimport env proxy_get_header_map_pairs
func proxyGetPairs(mapType uint32, retPtr unsafe.Pointer, retSize *uint32) uint32

//go:wasmimport env proxy_set_header_map_pairs
func proxySetPairs(mapType uint32, p *byte, l uint32) uint32

//go:wasmimport env proxy_get_property
func proxyGetProperty(pp *byte, pl uint32, retPtr unsafe.Pointer, retSize *uint32) uint32

//go:wasmimport env proxy_send_local_response
func proxySendLocalResponse(code uint32, dp *byte, dl uint32, bp *byte, bl uint32, hp *byte, hl uint32, grpc int32) uint32

//go:wasmimport wasi_snapshot_preview1 fd_write
func fdWrite(fd uint32, iovs unsafe.Pointer, n uint32, written *uint32) uint32

//go:wasmimport wasi_snapshot_preview1 proc_exit
func procExit(code uint32)

//go:wasmimport wasi_snapshot_preview1 poll_oneoff
func pollOneoff(in, out unsafe.Pointer, n uint32, nevents *uint32) uint32

//go:wasmimport wasi_snapshot_preview1 random_get
func randomGet(buf unsafe.Pointer, n uint32) uint32

var (
	script     []string
	keep       [][]byte // allocations handed to the host stay reachable until the next call
	rootID     uint32
	phaseMap   = map[string]uint32{"req": 0, "resp": 2}
	actionNext uint32
)

func main() {}

func init() {
	if v, ok := syscall.Getenv("RAWABI_PANIC_IN_INIT"); ok {
		panic("init failed: " + v)
	}
	if _, ok := syscall.Getenv("RAWABI_EXIT_IN_INIT"); ok {
		procExit(3)
	}
}

func ptr(s string) *byte {
	if len(s) == 0 {
		return nil
	}
	return unsafe.StringData(s)
}

func bytesAt(p *byte, n uint32) string {
	if p == nil || n == 0 {
		return ""
	}
	return string(unsafe.Slice(p, n))
}

func log(level uint32, msg string) { proxyLog(level, ptr(msg), uint32(len(msg))) }

//go:wasmexport proxy_abi_version_0_2_1
func abiVersion() {}

//go:wasmexport proxy_on_memory_allocate
func onAlloc(size uint32) unsafe.Pointer {
	buf := make([]byte, size)
	keep = append(keep, buf)
	return unsafe.Pointer(&buf[0])
}

//go:wasmexport proxy_on_context_create
func onContextCreate(id, parent uint32) {
	if parent == 0 {
		rootID = id
	}
}

//go:wasmexport proxy_on_vm_start
func onVMStart(root, size uint32) uint32 { return 1 }

//go:wasmexport proxy_on_configure
func onConfigure(root, size uint32) uint32 {
	keep = nil
	var p *byte
	var n uint32
	if size > 0 {
		if st := proxyGetBufferBytes(7, 0, size, unsafe.Pointer(&p), &n); st != 0 {
			log(5, "cannot read plugin configuration: status "+strconv.Itoa(int(st)))
			return 0
		}
	}
	script = strings.Split(bytesAt(p, n), "\n")
	log(2, "configured: "+strconv.Itoa(len(script))+" line(s)")
	return run("configure", 99)
}

//go:wasmexport proxy_on_request_headers
func onRequestHeaders(id, n, eos uint32) uint32 {
	keep = nil
	log(1, "request headers: "+strconv.Itoa(int(n)))
	return run("req", 0)
}

//go:wasmexport proxy_on_response_headers
func onResponseHeaders(id, n, eos uint32) uint32 {
	keep = nil
	return run("resp", 2)
}

//go:wasmexport proxy_on_done
func onDone(id uint32) uint32 { return 1 }

//go:wasmexport proxy_on_log
func onLog(id uint32) { log(2, "log phase "+strconv.Itoa(int(id))) }

//go:wasmexport proxy_on_delete
func onDelete(id uint32) {}

func add(m uint32, k, v string) {
	if m == 99 {
		log(2, k+"="+v)
		return
	}
	proxyAddHeader(m, ptr(k), uint32(len(k)), ptr(v), uint32(len(v)))
}

// run executes the script lines of one phase against header map m; it returns the
// callback's result (Continue=0 / Pause=1 for headers, true=1 / false=0 for configure).
func run(phase string, m uint32) uint32 {
	result := uint32(0)
	if phase == "configure" {
		result = 1
	}
	for _, line := range script {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != phase {
			continue
		}
		arg := func(i int) string {
			if i+2 < len(f) {
				return f[i+2]
			}
			return ""
		}
		switch f[1] {
		case "add":
			add(m, arg(0), arg(1))
		case "replace":
			k, v := arg(0), arg(1)
			proxyReplaceHeader(m, ptr(k), uint32(len(k)), ptr(v), uint32(len(v)))
		case "remove":
			k := arg(0)
			proxyRemoveHeader(m, ptr(k), uint32(len(k)))
		case "get": // get NAME TARGET [MAP]
			k := arg(0)
			src := m
			if arg(2) != "" {
				src = phaseMap[arg(2)]
			}
			var p *byte
			var n uint32
			st := proxyGetHeader(src, ptr(k), uint32(len(k)), unsafe.Pointer(&p), &n)
			add(m, arg(1), strconv.Itoa(int(st))+":"+bytesAt(p, n))
		case "pairs": // pairs TARGET: "k=v|k=v"
			var p *byte
			var n uint32
			st := proxyGetPairs(m, unsafe.Pointer(&p), &n)
			add(m, arg(0), strconv.Itoa(int(st))+":"+decodePairs(bytesAt(p, n)))
		case "setpairs": // setpairs k=v|k=v
			var kv [][2]string
			for _, item := range strings.Split(arg(0), "|") {
				k, v, _ := strings.Cut(item, "=")
				kv = append(kv, [2]string{k, v})
			}
			b := encodePairs(kv)
			proxySetPairs(m, ptr(b), uint32(len(b)))
		case "prop", "propint": // prop a.b TARGET
			path := strings.ReplaceAll(arg(0), ".", "\x00")
			var p *byte
			var n uint32
			st := proxyGetProperty(ptr(path), uint32(len(path)), unsafe.Pointer(&p), &n)
			v := bytesAt(p, n)
			if f[1] == "propint" && len(v) == 8 {
				x := uint64(0)
				for i := 7; i >= 0; i-- {
					x = x<<8 | uint64(v[i])
				}
				v = strconv.FormatInt(int64(x), 10)
			}
			add(m, arg(1), strconv.Itoa(int(st))+":"+v)
		case "local": // local CODE BODY
			code, _ := strconv.Atoi(arg(0))
			d, b := "rawabi_denied", arg(1)
			h := encodePairs([][2]string{{"x-local", "yes"}, {"content-type", "text/plain"}})
			proxySendLocalResponse(uint32(code), ptr(d), uint32(len(d)), ptr(b), uint32(len(b)), ptr(h), uint32(len(h)), -1)
			result = 1
		case "log": // log LEVEL WORDS...
			lvl, _ := strconv.Atoi(arg(0))
			log(uint32(lvl), strings.Join(f[3:], " "))
		case "stdout", "stderr":
			msg := strings.Join(f[2:], " ") + "\n"
			fd := uint32(1)
			if f[1] == "stderr" {
				fd = 2
			}
			iov := [2]uint32{uint32(uintptr(unsafe.Pointer(unsafe.StringData(msg)))), uint32(len(msg))}
			var w uint32
			fdWrite(fd, unsafe.Pointer(&iov), 1, &w)
		case "exit":
			procExit(7)
			add(m, "x-after-exit", "1")
		case "poll": // poll TARGET: "errno:nevents"
			var sub [48]byte
			sub[8] = 0 // eventtype clock
			var ev [32]byte
			nev := uint32(12345)
			st := pollOneoff(unsafe.Pointer(&sub), unsafe.Pointer(&ev), 1, &nev)
			add(m, arg(0), strconv.Itoa(int(st))+":"+strconv.Itoa(int(nev)))
		case "random": // random N TARGET
			n, _ := strconv.Atoi(arg(0))
			buf := make([]byte, n+1)
			st := randomGet(unsafe.Pointer(&buf[0]), uint32(n))
			add(m, arg(1), strconv.Itoa(int(st)))
		case "env": // env NAME TARGET
			v, ok := syscall.Getenv(arg(0))
			if !ok {
				v = "<unset>"
			}
			add(m, arg(1), v)
		case "panic":
			panic("rawabi: " + strings.Join(f[2:], " "))
		case "fail":
			result = 0
		case "pause":
			result = 1
		case "spin": // burn instructions forever
			x := uint64(1)
			for x != 0 {
				x = x*6364136223846793005 + 1442695040888963407
			}
		}
	}
	return result
}

func encodePairs(kv [][2]string) string {
	var b []byte
	u32 := func(x int) { b = append(b, byte(x), byte(x>>8), byte(x>>16), byte(x>>24)) }
	u32(len(kv))
	for _, p := range kv {
		u32(len(p[0]))
		u32(len(p[1]))
	}
	for _, p := range kv {
		b = append(b, p[0]...)
		b = append(b, 0)
		b = append(b, p[1]...)
		b = append(b, 0)
	}
	return string(b)
}

func decodePairs(s string) string {
	if len(s) < 4 {
		return ""
	}
	u32 := func(i int) int {
		return int(s[i]) | int(s[i+1])<<8 | int(s[i+2])<<16 | int(s[i+3])<<24
	}
	n := u32(0)
	data := 4 + 8*n
	var out []string
	for i := 0; i < n; i++ {
		kl, vl := u32(4+8*i), u32(8+8*i)
		k := s[data : data+kl]
		data += kl + 1
		v := s[data : data+vl]
		data += vl + 1
		out = append(out, k+"="+v)
	}
	return strings.Join(out, "|")
}
