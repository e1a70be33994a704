/**
 * The README's TypeScript examples compile against the library as published: each
 * ```ts block is type-checked with the package name mapped to this repository.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ts from 'typescript';

const root = join(__dirname, '..', '..');

function examples(): string[] {
  const text = readFileSync(join(root, 'README.md'), 'utf8');
  return [...text.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);
}

describe('README examples', () => {
  it('has TypeScript examples', () => {
    expect(examples().length).toBeGreaterThanOrEqual(2);
  });

  it('every example type-checks against the library', () => {
    const dir = join(root, 'build', 'readme-examples');
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const files = examples().map((code, i) => {
      const file = join(dir, `example-${i + 1}.ts`);
      writeFileSync(file, `export {};\n${code}`);
      return file;
    });
    const program = ts.createProgram(files, {
      strict: true,
      noEmit: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.CommonJS,
      moduleResolution: ts.ModuleResolutionKind.Node10,
      esModuleInterop: true,
      skipLibCheck: true,
      types: ['node'],
      baseUrl: root,
      paths: { 'cdktf-self-managed-vm': ['constructs/index.ts'], 'cdktf-self-managed-vm/events': ['lambda-agent/contract/events.ts'] },
    });
    const diagnostics = ts.getPreEmitDiagnostics(program).filter((d) => d.file && files.includes(d.file.fileName));
    const text = diagnostics.map(
      (d) => `${d.file!.fileName.slice(dir.length + 1)}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`,
    );
    expect(text).toEqual([]);
  }, 120_000);
});
