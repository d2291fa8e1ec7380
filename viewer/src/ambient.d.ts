/** esbuild's text loader (scripts/build-viewer.js): the .proto file as a string. */
declare module '*.proto' {
  const text: string;
  export default text;
}
