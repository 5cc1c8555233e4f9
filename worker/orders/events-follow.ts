// What the events database keeps of an ingestion, written after the customer store has the orders (the
// source of truth): POST /v1/orders and the import queue's consumer follow every ingestion with it, so
// the holdout figures and a merged shopper's events are the same whichever way the orders came.
import type { EventsDb } from "../env.ts";
import { type Conversion, conversionsOf, recordConversions } from "../events/conversions.repo.ts";
import { moveCustomerEvents } from "../events/events.repo.ts";
import { orderSuppressionKey } from "../suppressions/suppressions.repo.ts";
import type { CustomerMerge, IngestResult } from "./ingest.ts";
import type { OrderInput } from "./orders.schemas.ts";

/**
 * Records the conversions of the attributed orders (those created now, and `resent`: the stored ones
 * of duplicates, in case an earlier attempt stopped between the two databases) and moves the merged
 * customers' events to the survivors. Conversions are keyed by order id: never counted twice.
 */
export async function followInEvents(
  eventsDb: EventsDb,
  identitySecret: string,
  orders: readonly OrderInput[],
  results: readonly IngestResult["results"][number][],
  resent: readonly Conversion[],
  merged: readonly CustomerMerge[],
): Promise<void> {
  await recordConversions(eventsDb, [...conversionsOf(orders, results), ...resent], (orderId) =>
    orderSuppressionKey(orderId, identitySecret),
  );
  await moveCustomerEvents(eventsDb, merged);
}
