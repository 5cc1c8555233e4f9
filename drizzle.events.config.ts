// The events database (EVENTS_DB): its own schema and migrations, apart from the main database's
// (drizzle.config.ts). `npm run db:generate` runs both.
import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "sqlite",
  schema: "./db/events-schema.ts",
  out: "./db/events-migrations",
});
