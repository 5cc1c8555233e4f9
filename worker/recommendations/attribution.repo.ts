// The customers behind identity keys, with the customers merged into each, in one D1 round trip:
// what an attribution check needs to know who may claim a recommendation id.

import { sql } from "drizzle-orm";
import { jsonEach } from "../../db/batch.ts";
import type { Db } from "../env.ts";

export interface KeyOwner {
  customerId: string;
  /** The owner and every customer merged into it (merge pointers always name the survivor). */
  family: string[];
}

/** The owner of each key that has one (shared and unknown keys are absent). */
export async function ownersOf(db: Db, keys: readonly string[]): Promise<Map<string, KeyOwner>> {
  const owners = new Map<string, KeyOwner>();
  if (keys.length === 0) return owners;
  const rows = await db.all<{ key: string; owner: string; member: string | null }>(sql`
    SELECT i.key, i.customer_id AS owner, c.id AS member
    FROM identities i LEFT JOIN customers c ON c.merged_into = i.customer_id
    WHERE i.key IN (SELECT value FROM ${jsonEach([...new Set(keys)])}) AND i.customer_id IS NOT NULL`);
  for (const row of rows) {
    let owner = owners.get(row.key);
    if (!owner) {
      owner = { customerId: row.owner, family: [row.owner] };
      owners.set(row.key, owner);
    }
    if (row.member && !owner.family.includes(row.member)) owner.family.push(row.member);
  }
  return owners;
}
