// Which view the cluster is in, as far as the client can tell from replies, and so which replica
// to send requests to: the primary of view v is replica v mod n (PBFT §4.1; cluster.ts).
//
// Every reply carries its replica's view. A faulty replica can report any view, for instance one
// whose primary is itself and which then ignores requests, costing the client a timeout each time.
// So the estimate is the (f + 1)-th highest view reported: at least f + 1 replicas reported that
// view or a later one, so at least one correct replica has reached it; and the f highest reports,
// which may all be lies, cannot raise it. A wrong estimate costs only time: a request the
// presumed primary ignores is re-broadcast to every replica after the attempt timeout.

import { primaryOf } from "../consensus/pbft/quorum.js";
import { vouched } from "./status-summary.js";

export class ViewEstimate {
  // The highest view each replica reported; one slot per replica, so bounded by n.
  private readonly views: number[];
  private readonly f: number;
  private estimate = 0;

  constructor(replicaCount: number, f: number) {
    if (!(Number.isSafeInteger(f) && f >= 0 && f < replicaCount)) throw new RangeError(`f must be from 0 to ${replicaCount - 1}, not ${f}`);
    this.views = new Array<number>(replicaCount).fill(0);
    this.f = f;
  }

  get view(): number {
    return this.estimate;
  }

  /** The replica the client believes is the primary. */
  get primary(): number {
    return primaryOf(this.estimate, this.views.length);
  }

  /** Records that `replica` (an authenticated replica id) reported `view`. */
  record(replica: number, view: number): void {
    const known = this.views[replica];
    if (known === undefined) throw new RangeError(`replica ${replica} is not in the cluster`);
    // Views only grow at a correct replica, so an older report adds nothing. The sort inside `vouched`
    // happens only when some replica's view rises: rare next to replies.
    if (!(Number.isSafeInteger(view) && view > known)) return;
    this.views[replica] = view;
    this.estimate = vouched(this.views, this.f) ?? 0;
  }
}
