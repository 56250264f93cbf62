//go:build wasip1 && wasm

package reef

import "unsafe"

// The raw core-wasm imports of interface reef:runtime/host@0.2.0 (canonical ABI, flattened).
// Results with more than one flat value are written to ret (see abi.go for the layouts).

//go:wasmimport reef:runtime/host@0.2.0 log
func hostLog(level uint32, msgPtr unsafe.Pointer, msgLen uint32)

//go:wasmimport reef:runtime/host@0.2.0 report-panic
func hostReportPanic(msgPtr unsafe.Pointer, msgLen uint32)

//go:wasmimport reef:runtime/host@0.2.0 put
func hostPut(dataPtr unsafe.Pointer, dataLen uint32, ret unsafe.Pointer)

//go:wasmimport reef:runtime/host@0.2.0 object-size
func hostObjectSize(id uint64, ret unsafe.Pointer)

//go:wasmimport reef:runtime/host@0.2.0 get
func hostGet(id uint64, ret unsafe.Pointer)

//go:wasmimport reef:runtime/host@0.2.0 map-view
func hostMapView(id uint64, bufPtr unsafe.Pointer, bufLen uint32, ret unsafe.Pointer)

//go:wasmimport reef:runtime/host@0.2.0 release-view
func hostReleaseView(bufPtr unsafe.Pointer, bufLen uint32)

//go:wasmimport reef:runtime/host@0.2.0 submit
func hostSubmit(modPtr unsafe.Pointer, modLen uint32, fnPtr unsafe.Pointer, fnLen uint32, argsPtr unsafe.Pointer, argsLen uint32, ret unsafe.Pointer)

//go:wasmimport reef:runtime/host@0.2.0 actor-create
func hostActorCreate(modPtr unsafe.Pointer, modLen uint32, classPtr unsafe.Pointer, classLen uint32, argsPtr unsafe.Pointer, argsLen uint32, nameIsSome uint32, namePtr unsafe.Pointer, nameLen uint32, ret unsafe.Pointer)

//go:wasmimport reef:runtime/host@0.2.0 actor-lookup
func hostActorLookup(namePtr unsafe.Pointer, nameLen uint32, ret unsafe.Pointer)

//go:wasmimport reef:runtime/host@0.2.0 actor-call
func hostActorCall(actor uint64, methodPtr unsafe.Pointer, methodLen uint32, argsPtr unsafe.Pointer, argsLen uint32, ret unsafe.Pointer)
