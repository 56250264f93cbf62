/*
 * Internal: canonical-ABI offsets of world `module` on wasm32 that the SDK's sources use.
 * tests/abi_layout_test.c checks them against tests/golden/abi-layouts.json, which the
 * host's tests compute from wit/.
 */
#ifndef REEF_ABI_LAYOUT_H
#define REEF_ABI_LAYOUT_H

/* arg and output: discriminant u8 @0, payload @8; an arg is 24 bytes, 8-aligned. */
#define REEF_ARG_SIZE 24
#define REEF_ARG_ALIGN 8
#define REEF_VARIANT_PAYLOAD 8
/* failure: code u8 @0, message string @4. */
#define REEF_FAILURE_MESSAGE 4
/* Payload offset of a result whose ok value holds a u64 (u64, object-ref, output). */
#define REEF_WIDE_PAYLOAD 8
/* Payload offset of result<_, failure> and result<list<u8>, failure>. */
#define REEF_NARROW_PAYLOAD 4
/* The return area: as large and aligned as the largest result. */
#define REEF_RET_AREA_SIZE 24
#define REEF_RET_AREA_ALIGN 8

#endif
