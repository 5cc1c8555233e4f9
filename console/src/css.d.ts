// esbuild bundles imported stylesheets into console.css next to console.js.
declare module "*.css";
