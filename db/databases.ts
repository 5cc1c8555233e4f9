// Patron's two D1 databases and where each one's schema and migrations live: the main database (DB:
// customers, orders, catalog, rules, model runs) and the events database (EVENTS_DB: widget events and
// attributed conversions, with their own retention). Read by the migration scripts and test setup.
export const databases = [
  { binding: "DB", name: "patron", schema: "db/schema.ts", migrations: "db/migrations", config: "drizzle.config.ts" },
  {
    binding: "EVENTS_DB",
    name: "patron-events",
    schema: "db/events-schema.ts",
    migrations: "db/events-migrations",
    config: "drizzle.events.config.ts",
  },
] as const;
