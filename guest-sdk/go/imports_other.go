//go:build !(wasip1 && wasm)

package reef

import "unsafe"

// Stand-ins with the same signatures so that the package builds and unit-tests on the
// build machine (`go test`). Inside a Reef worker the wasip1 imports are used instead.

func unavailable(name string) {
	panic("reef host function `" + name + "` is only available inside a Reef worker (GOOS=wasip1 GOARCH=wasm)")
}

func hostLog(level uint32, msgPtr unsafe.Pointer, msgLen uint32) { unavailable("log") }
func hostReportPanic(msgPtr unsafe.Pointer, msgLen uint32)       {}
func hostPut(dataPtr unsafe.Pointer, dataLen uint32, ret unsafe.Pointer) {
	unavailable("put")
}
func hostObjectSize(id uint64, ret unsafe.Pointer) { unavailable("object-size") }
func hostGet(id uint64, ret unsafe.Pointer)        { unavailable("get") }
func hostMapView(id uint64, bufPtr unsafe.Pointer, bufLen uint32, ret unsafe.Pointer) {
	unavailable("map-view")
}
func hostReleaseView(bufPtr unsafe.Pointer, bufLen uint32) { unavailable("release-view") }
func hostSubmit(modPtr unsafe.Pointer, modLen uint32, fnPtr unsafe.Pointer, fnLen uint32, argsPtr unsafe.Pointer, argsLen uint32, ret unsafe.Pointer) {
	unavailable("submit")
}
func hostActorCreate(modPtr unsafe.Pointer, modLen uint32, classPtr unsafe.Pointer, classLen uint32, argsPtr unsafe.Pointer, argsLen uint32, nameIsSome uint32, namePtr unsafe.Pointer, nameLen uint32, ret unsafe.Pointer) {
	unavailable("actor-create")
}
func hostActorLookup(namePtr unsafe.Pointer, nameLen uint32, ret unsafe.Pointer) {
	unavailable("actor-lookup")
}
func hostActorCall(actor uint64, methodPtr unsafe.Pointer, methodLen uint32, argsPtr unsafe.Pointer, argsLen uint32, ret unsafe.Pointer) {
	unavailable("actor-call")
}
