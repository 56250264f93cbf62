package reef

import (
	"fmt"
	"os"
	"runtime/debug"
	"unsafe"
)

// # The garbage collector between calls
//
// Between two export calls the host may call cabi_realloc (for the next call's
// parameters) while the guest must not call any import. A parameter larger than the
// static arena is allocated on the Go heap (see abi.go), and a Go heap allocation could
// start a garbage collection, which reads the clock through WASI: a trap. So the garbage
// collector is off between calls: every export turns it on (with the program's GOGC)
// once it has taken its parameters and off again before it returns. setGCPercent(-1)
// also waits for a collection in progress to finish, so none runs between calls.

// gcPercent is the program's GOGC setting, restored while Go code runs.
var gcPercent = 100

func init() {
	gcPercent = debug.SetGCPercent(-1)
	if gcPercent < 0 {
		gcPercent = -1 // GOGC=off: leave it off.
	}
}

// gcOn and gcOff bracket the Go code of an export.
func gcOn() {
	if gcPercent >= 0 {
		debug.SetGCPercent(gcPercent)
	}
}

func gcOff() {
	debug.SetGCPercent(-1)
}

var (
	// exportRet is the return area of every export (the host reads it before cabi_post_*).
	exportRet retArea
	// keep is what the last export's return area points to, dropped by cabi_post_*.
	keep any
)

// finish stores what the return area references and returns the area's address.
func finish(k any) uint32 {
	keep = k
	return addr32(unsafe.Pointer(&exportRet))
}

// guard runs an export's body. A Go panic is reported to the host (report-panic, with the
// message and the goroutine's stack) and then re-raised: the Go runtime prints it to
// stderr and exits, which traps the instance, and the task fails with GUEST_PANIC and
// the message. Views still mapped at the end of the call are released.
func guard(body func()) {
	gcOn()
	defer gcOff()
	defer releaseAllViews()
	defer func() {
		if r := recover(); r != nil {
			msg := fmt.Sprintf("%v\n\n%s", r, debug.Stack())
			reportPanic(msg)
			releaseAllViews()
			os.Stdout.Sync()
			panic(r)
		}
	}()
	body()
}

// reportPanic sends a panic message to the host.
func reportPanic(msg string) {
	hostReportPanic(strPtr(msg), uint32(len(msg)))
}

func exportDescribe() uint32 {
	var k any
	guard(func() {
		names, methods := classNames()
		k = exportRet.lowerModuleInfo(SDK, taskNames(), names, methods)
	})
	return finish(k)
}

func exportRunTask(namePtr, nameLen, argsPtr, argsLen uint32) uint32 {
	name := takeString(namePtr, nameLen)
	args := Args{items: takeArgs(argsPtr, argsLen)}
	arenaReset()
	var k any
	guard(func() {
		out, err := runTask(name, args)
		k = exportRet.lowerResultOutput(out, err)
	})
	return finish(k)
}

func exportActorInit(classPtr, classLen, argsPtr, argsLen uint32) uint32 {
	class := takeString(classPtr, classLen)
	args := Args{items: takeArgs(argsPtr, argsLen)}
	arenaReset()
	var k any
	guard(func() {
		k = exportRet.lowerResultUnit(initActor(class, args))
	})
	return finish(k)
}

func exportActorCall(methodPtr, methodLen, argsPtr, argsLen uint32) uint32 {
	method := takeString(methodPtr, methodLen)
	args := Args{items: takeArgs(argsPtr, argsLen)}
	arenaReset()
	var k any
	guard(func() {
		out, err := callActor(method, args)
		k = exportRet.lowerResultOutput(out, err)
	})
	return finish(k)
}

// postReturn is every cabi_post_*: drops what the last return area referenced.
func postReturn() {
	keep = nil
	arenaReset()
}
