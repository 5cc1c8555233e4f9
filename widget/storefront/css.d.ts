// widget/build.ts bundles .css files as minified strings.
declare module "*.css" {
  const css: string;
  export default css;
}
