// Stopping the cluster calls made for an HTTP request whose client went away. Without it a
// disconnected client's call would wait out the SDK's whole deadline (30 s), holding one of the
// gateway's callsPendingMax slots for nobody.

import type { FastifyReply } from "fastify";

/**
 * A signal that fires when the response's connection closes before the answer was sent. It
 * watches the response, not the request: a request stream also closes once its body has been
 * read, which is long before the answer for a PUT or POST.
 */
export function disconnectSignal(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  const response = reply.raw;
  response.once("close", () => {
    if (!response.writableFinished) controller.abort(new Error("the HTTP client disconnected before the answer was sent"));
  });
  return controller.signal;
}
