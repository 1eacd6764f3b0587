package enroll

import "github.com/liggare/liggare/syncproto"

// Enrollment on the server side: see syncproto/enroll.go.
// These names keep this package reading as it did; syncproto holds the
// one definition of the enrollment wire format, shared with the other side.

// Paths, limits and refusal codes of enrollment.
const (
	EnrollPath            = syncproto.EnrollPath
	RotatePath            = syncproto.CredentialRotatePath
	ConfirmPath           = syncproto.CredentialConfirmPath
	MaxRequestBytes       = syncproto.MaxEnrollRequestBytes
	MinNonceBytes         = syncproto.MinEnrollNonceBytes
	Alphabet              = syncproto.EnrollCodeAlphabet
	CodeLength            = syncproto.EnrollCodeLength
	ErrorCodeMalformed    = syncproto.EnrollErrorMalformed
	ErrorCodeBadCode      = syncproto.EnrollErrorBadCode
	ErrorCodeUsed         = syncproto.EnrollErrorUsed
	ErrorCodeExpired      = syncproto.EnrollErrorExpired
	ErrorCodeSignature    = syncproto.EnrollErrorSignature
	ErrorCodeTerminalID   = syncproto.EnrollErrorTerminalID
	ErrorCodeTerminalUsed = syncproto.EnrollErrorTerminalUsed
	ErrorCodeNoKey        = syncproto.EnrollErrorNoKey
	ErrorCodeUnauthorized = syncproto.EnrollErrorUnauthorized
	ErrorCodeRateLimited  = syncproto.EnrollErrorRateLimited
	ErrorCodeUnavailable  = syncproto.EnrollErrorUnavailable
)

// Request and response bodies.
type (
	EnrollRequest   = syncproto.EnrollRequest
	EnrollResponse  = syncproto.EnrollResponse
	RotateRequest   = syncproto.CredentialRotateRequest
	RotateResponse  = syncproto.CredentialRotateResponse
	ConfirmResponse = syncproto.CredentialConfirmResponse
	ErrorResponse   = syncproto.EnrollErrorResponse
)

// The signed messages and code formatting.
var (
	EnrollMessage  = syncproto.EnrollMessage
	RotateMessage  = syncproto.CredentialRotateMessage
	ConfirmMessage = syncproto.CredentialConfirmMessage
	NormalizeCode  = syncproto.NormalizeEnrollCode
	FormatCode     = syncproto.FormatEnrollCode
)
