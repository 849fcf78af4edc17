// gRPC's status codes (https://grpc.github.io/grpc/core/md_doc_statuscodes.html), crib's own copy:
// the daemon speaks gRPC without @grpc/grpc-js (server/grpc-server.ts), and importing even
// grpc-js's constants file would put the package back into its module graph. The numbers are
// the protocol's, so they compare equal to grpc-js's `status` in the clients.
export enum Status {
  OK = 0,
  CANCELLED = 1,
  UNKNOWN = 2,
  INVALID_ARGUMENT = 3,
  DEADLINE_EXCEEDED = 4,
  NOT_FOUND = 5,
  ALREADY_EXISTS = 6,
  PERMISSION_DENIED = 7,
  RESOURCE_EXHAUSTED = 8,
  FAILED_PRECONDITION = 9,
  ABORTED = 10,
  OUT_OF_RANGE = 11,
  UNIMPLEMENTED = 12,
  INTERNAL = 13,
  UNAVAILABLE = 14,
  DATA_LOSS = 15,
  UNAUTHENTICATED = 16,
}
