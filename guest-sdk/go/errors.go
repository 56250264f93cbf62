package reef

import (
	"errors"
	"fmt"
	"strings"
)

// Code is an error code: the WIT enum `code` of reef:runtime, which is the driver API's
// ErrorCode (same names, same order). Its value is the canonical-ABI discriminant.
type Code uint8

// The error codes. Guests mostly raise CodeBadArgument; an error without a code is
// CodeGuestError. Host functions fail with any of them (reading the result of a failed
// task gives that task's code).
const (
	CodeInvalidModule Code = iota
	CodeUnknownModule
	CodeUnknownFunction
	CodeBadArgument
	CodeUnknownObject
	CodeGuestTrap
	CodeGuestPanic
	CodeGuestError
	CodeMemoryLimit
	CodeCpuTimeLimit
	CodeStackOverflow
	CodeCancelled
	CodeTimeout
	CodeStoreFull
	CodeInfeasible
	CodeDependencyFailed
	CodeUnknownActor
	CodeActorDead
	CodeNameTaken
	CodeNodeStopping
	CodeOwnerDied
	CodeViewError
	CodeInternal
	CodeUnauthenticated
	CodeNodeDied
	CodeUnknownNode
	CodeUnknownPlacementGroup
	CodeObjectLost
	CodeNotGranted
	CodePlacementGroupRemoved
)

// codeNames are the WIT names of the codes, indexed by Code.
var codeNames = [...]string{
	"invalid-module",
	"unknown-module",
	"unknown-function",
	"bad-argument",
	"unknown-object",
	"guest-trap",
	"guest-panic",
	"guest-error",
	"memory-limit",
	"cpu-time-limit",
	"stack-overflow",
	"cancelled",
	"timeout",
	"store-full",
	"infeasible",
	"dependency-failed",
	"unknown-actor",
	"actor-dead",
	"name-taken",
	"node-stopping",
	"owner-died",
	"view-error",
	"internal",
	"unauthenticated",
	"node-died",
	"unknown-node",
	"unknown-placement-group",
	"object-lost",
	"not-granted",
	"placement-group-removed",
}

// String returns the driver's name of the code, e.g. "BAD_ARGUMENT".
func (c Code) String() string {
	if int(c) >= len(codeNames) {
		return fmt.Sprintf("Code(%d)", uint8(c))
	}
	return strings.ToUpper(strings.ReplaceAll(codeNames[c], "-", "_"))
}

// Error is an error with a Code. Returned from a task or method (or wrapped, e.g. by
// fmt.Errorf("...: %w", err)), it fails the call with that code and err.Error() as the
// message. Host functions return *Error.
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string { return e.Message }

// Errorf returns an *Error with code and a formatted message:
//
//	return nil, reef.Errorf(reef.CodeBadArgument, "n must be positive, got %d", n)
func Errorf(code Code, format string, a ...any) error {
	return &Error{Code: code, Message: fmt.Sprintf(format, a...)}
}

// CodeOf returns the code of the first *Error in err's chain, or CodeGuestError.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeGuestError
}

// withContext prefixes err's message with context; the code stays (see CodeOf).
func withContext(err error, context string) error {
	return fmt.Errorf("%s: %w", context, err)
}
