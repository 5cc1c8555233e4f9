// Loaded with `node --import` by `npm run dev` (the plain `wrangler dev`): wrangler passes Node's flags on
// to the process that runs its dev server, so that server keeps idle connections open as `npm start`'s does.
import { keepIdleConnectionsOpen } from "./loopback-keep-alive.ts";

keepIdleConnectionsOpen();
