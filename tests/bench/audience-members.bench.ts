// What an audience with a webhook costs D1: its members' delivery state is kept in D1's
// audience_members (a row per member, with its two indexes), whichever store holds the customers. Marks
// `--members` members (default 1,000,000) of one audience in a fresh local D1 with the nightly sync's
// own code (markMembersPage, pages of 2,000, members spread over 16 shards), then accepts them as
// joined in pages of 500 (pageAccepted, as the webhook delivery does), and prints the bytes per member
// (dbstat, with the sqlite3 CLI; D1's size_after otherwise), the time of each walk next to a bare
// insert of the same ids in the same run, and what that makes of D1's 10 GB.
// Usage: npm run bench -- audience-members [--members 1000000]
import { rmSync } from "node:fs";
import { drizzle } from "drizzle-orm/d1";
import * as schema from "../../db/schema.ts";
import type { ListedRow } from "../../worker/admin/customer-lists.repo.ts";
import {
  deleteAudience,
  insertAudience,
  markMembersPage,
  pageAccepted,
  purgeMembers,
  startSync,
} from "../../worker/audiences/audiences.repo.ts";
import { defaultAudiencePaging } from "../../worker/audiences/paging.ts";
import type { Db } from "../../worker/env.ts";
import { freshLocalD1, openLocalD1, tableBytes } from "./local-d1.ts";

const markPage = 2_000;
const deliveryPage = 500;
const shards = 16;
/** D1's size limit per database, which cannot be raised. */
const d1Bytes = 10e9;

function option(args: string[], name: string, fallback: number): number {
  const at = args.indexOf(`--${name}`);
  if (at < 0) return fallback;
  const value = Number(args[at + 1]);
  if (!Number.isInteger(value) || value < markPage)
    throw new Error(`--${name} must be a whole number of at least ${markPage}`);
  return value;
}

/** A customer id shaped as ingestion makes them (`c_` and 20 hex digits), from a counter. */
const customerId = (i: number) => `c_${i.toString(16).padStart(20, "0")}`;

/** A page of the customer list as a shard answers it: ids by CLV at stake, descending. */
const listed = (from: number, count: number): ListedRow[] =>
  Array.from({ length: count }, (_, k) => ({ customerId: customerId(from + k), sortValue: -(from + k) }) as ListedRow);

async function timed(work: () => Promise<void>): Promise<number> {
  const start = performance.now();
  await work();
  return (performance.now() - start) / 1000;
}

export default async function audienceMembersBench(args: string[]) {
  const members = option(args, "members", 1_000_000);
  const { persistDir, proxy } = await freshLocalD1("audience-members");
  try {
    let sizeAfter = 0;
    let slowestPurgePage = 0;
    const id = `aud_${crypto.randomUUID().replaceAll("-", "")}`;
    const seconds = { mark: 0, accept: 0, bare: 0, delete: 0 };
    try {
      const db = drizzle(proxy.env.DB, { schema }) as unknown as Db;
      const now = new Date().toISOString();
      await insertAudience(
        db,
        {
          id,
          name: "Everyone",
          filters: {},
          webhookUrl: "https://receiver.example.com/hook",
          matchKeys: [],
          secret: "sealed",
          createdAt: now,
          updatedAt: now,
        },
        1,
      );
      const seq = await startSync(db, id);
      if (seq === undefined) throw new Error("the audience was not saved");
      const perShard = Math.ceil(members / shards);
      let lastReport = performance.now();
      const progress = (stage: string, done: number) => {
        if (performance.now() - lastReport < 10_000) return;
        lastReport = performance.now();
        console.log(`${stage}: ${done.toLocaleString("en")} of ${members.toLocaleString("en")}`);
      };
      seconds.mark = await timed(async () => {
        for (let from = 0; from < members; from += markPage) {
          const count = Math.min(markPage, members - from);
          await markMembersPage(
            db,
            id,
            seq,
            {},
            undefined,
            count,
            async () => listed(from, count),
            Math.floor(from / perShard),
          );
          progress("marked", from + count);
        }
      });
      seconds.accept = await timed(async () => {
        for (let from = 0; from < members; from += deliveryPage) {
          const ids = Array.from({ length: Math.min(deliveryPage, members - from) }, (_, k) => customerId(from + k));
          await pageAccepted(db, id, { seq, page: from / deliveryPage + 1, kind: "joined", customerIds: ids }, 204);
          progress("accepted", from + ids.length);
        }
      });
      // The baseline: the same ids into a bare table with nothing but its key, in the same pages.
      await proxy.env.DB.exec("CREATE TABLE bench_bare (customer_id TEXT PRIMARY KEY) WITHOUT ROWID");
      seconds.bare = await timed(async () => {
        for (let from = 0; from < members; from += markPage) {
          const ids = Array.from({ length: Math.min(markPage, members - from) }, (_, k) => customerId(from + k));
          await proxy.env.DB.prepare("INSERT INTO bench_bare SELECT value FROM json_each(?)")
            .bind(JSON.stringify(ids))
            .run();
        }
      });
      const size = await proxy.env.DB.prepare("SELECT count(*) AS n FROM audience_members").first<{ n: number }>();
      if (size?.n !== members) throw new Error(`marked ${size?.n} members, not ${members}`);
      const delivered = await proxy.env.DB.prepare(
        "SELECT count(*) AS n FROM audience_members WHERE delivered = 1",
      ).first<{ n: number }>();
      if (delivered?.n !== members) throw new Error(`accepted ${delivered?.n} members, not ${members}`);
      sizeAfter = (await proxy.env.DB.prepare("SELECT 1").run()).meta.size_after ?? 0;
    } finally {
      await proxy.dispose();
    }
    const tables = await tableBytes(persistDir);
    // Then the audience deleted (DELETE /v1/admin/audiences/:id; a new webhook URL forgets the members
    // the same way) and its members forgotten as the nightly job does, in pages of one statement each,
    // which D1 would stop after 30 s: the slowest page is what to hold against that.
    const again = await openLocalD1(persistDir);
    try {
      const db = drizzle(again.env.DB, { schema }) as unknown as Db;
      if (!(await deleteAudience(db, id, new Date()))) throw new Error("the audience was not there to delete");
      seconds.delete = await timed(async () => {
        for (let left = true; left; ) {
          const start = performance.now();
          left = (await purgeMembers(db, defaultAudiencePaging.purgePageSize, 1)).left;
          slowestPurgePage = Math.max(slowestPurgePage, (performance.now() - start) / 1000);
        }
      });
      const left = await again.env.DB.prepare("SELECT count(*) AS n FROM audience_members").first<{ n: number }>();
      if (left?.n !== 0) throw new Error(`${left?.n} members left after deleting the audience`);
    } finally {
      await again.dispose();
    }
    const n = (value: number) => Math.round(value).toLocaleString("en");
    const memberTables = ["audience_members", "sqlite_autoindex_audience_members_1", "audience_members_sync_idx"];
    const byTable = tables
      ? Object.fromEntries(
          [...memberTables, "audience_members_customer_idx"].map((name) => [name, (tables[name] ?? 0) / members]),
        )
      : null;
    const perMember = byTable ? Object.values(byTable).reduce((sum, bytes) => sum + bytes, 0) : sizeAfter / members;
    const bare = tables ? (tables.bench_bare ?? 0) / members : null;
    console.log(`members: ${n(members)} of one audience, over ${shards} shards`);
    if (byTable)
      console.log(
        `bytes per member (dbstat): ${Object.entries(byTable)
          .map(([name, bytes]) => `${name} ${bytes.toFixed(1)}`)
          .join(", ")}; in all ${perMember.toFixed(1)} (the bare table of ids: ${bare?.toFixed(1)})`,
      );
    else console.log(`bytes per member (the database's size, no sqlite3 CLI for dbstat): ${perMember.toFixed(1)}`);
    console.log(
      `marking: ${n(members / seconds.mark)} members/s; accepting as joined: ${n(members / seconds.accept)} members/s; ` +
        `bare insert of the ids: ${n(members / seconds.bare)} ids/s (marking ${(seconds.mark / seconds.bare).toFixed(1)}× its time)`,
    );
    console.log(
      `forgetting a deleted audience's members: ${seconds.delete.toFixed(2)} s, ${n(members / seconds.delete)} members/s, ` +
        `in pages of ${n(defaultAudiencePaging.purgePageSize)}, the slowest ${slowestPurgePage.toFixed(3)} s (D1 stops a query at 30 s)`,
    );
    console.log(
      `D1's 10 GB holds about ${n(d1Bytes / perMember / 1e6)} million memberships in all; an audience with a webhook of every ` +
        `customer of a 10,000,000 base takes ${((10_000_000 * perMember) / 1e9).toFixed(2)} GB of it`,
    );
  } finally {
    rmSync(persistDir, { recursive: true, force: true });
  }
}
