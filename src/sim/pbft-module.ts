// Binds the simulator's core port to the real PBFT core.

import { compactRecords, faultsTolerated, PbftReplica, primaryOf, signingPayload } from "../consensus/pbft/index.js";
import type { CoreModule } from "./core-port.js";

export const pbftModule: CoreModule = {
  createReplica: (options, restored) => new PbftReplica(options, restored),
  compactRecords,
  signingPayload,
  primaryOf,
  faultsTolerated,
};
