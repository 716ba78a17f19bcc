// The PBFT consensus core: a pure, deterministic state machine (DESIGN.md, "The consensus core contract").
export * from "./types.js";
export { PbftReplica, GENESIS_CHECKPOINT, type ReplicaStatus, type RestoredState } from "./replica.js";
export { compactRecords, compactRecordsBy, recordKeyOf, type RecordKey } from "./records.js";
export { signingPayload, sign, isWellFormed } from "./messages.js";
export { faultsTolerated, primaryOf, quorumsFor, type Quorums } from "./quorum.js";
export { planNewView, type NewViewPlan, type Reproposal } from "./new-view.js";
export { CertificateValidator } from "./certificates.js";
