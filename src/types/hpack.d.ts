// The part of hpack.js (no published types) that the HPACK decoder's tests check it against.
declare module 'hpack.js' {
  interface HeaderField {
    name: string;
    value: string;
    neverIndex: boolean;
  }
  interface Decompressor {
    write(block: Buffer): boolean;
    execute(): void;
    read(): HeaderField | null;
  }
  interface Compressor {
    write(headers: HeaderField[]): boolean;
    read(): Buffer | null;
  }
  const hpack: {
    decompressor: { create(opts: { table: { maxSize: number } }): Decompressor };
    compressor: { create(opts: { table: { maxSize: number } }): Compressor };
  };
  export default hpack;
}
