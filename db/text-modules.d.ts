// SQL files imported as text (wrangler's Text rule in wrangler.toml): the shards' migrations.
declare module "*.sql" {
  const text: string;
  export default text;
}
