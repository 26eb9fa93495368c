/**
 * The npm package's parts that work outside this checkout: where the node library is
 * found (checkout build, prebuilt, built from the shipped sources, or a clear error), how
 * `dora new` makes a project depend on the dora-ts it came from, and the doc comments of
 * the node API's public symbols (its types are what users of the package read).
 * `npm run release-check` installs the real tarball and runs projects from it.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ts from 'typescript';
import { dependencySpec } from '../cli/new';
import { buildFromSources, locateLibrary, missingBuildTools, prebuiltDir, PREBUILT_LIBRARY } from '../node-api/library';
import { ROOT } from './support/dataflow';

const temp = fs.mkdtempSync(path.join(os.tmpdir(), 'dora-package-'));
afterAll(() => fs.rmSync(temp, { recursive: true, force: true }));

/** A fake installed dora-ts: `<temp>/<name>/node_modules/dora-ts` in project `<temp>/<name>`. */
function installed(name: string, project: Record<string, unknown> | undefined, lock?: Record<string, unknown>): string {
  const root = path.join(temp, name, 'node_modules', 'dora-ts');
  fs.mkdirSync(root, { recursive: true });
  fs.writeFileSync(path.join(root, 'package.json'), JSON.stringify({ name: 'dora-ts', version: '1.2.3' }));
  if (project) fs.writeFileSync(path.join(temp, name, 'package.json'), JSON.stringify(project));
  if (lock) fs.writeFileSync(path.join(temp, name, 'node_modules', '.package-lock.json'), JSON.stringify(lock));
  return root;
}

describe('the node library', () => {
  test('a prebuilt library for this platform is found in an installed package, with its pkg-config folder', () => {
    const root = installed('prebuilt', {});
    fs.mkdirSync(prebuiltDir(root), { recursive: true });
    fs.writeFileSync(path.join(prebuiltDir(root), PREBUILT_LIBRARY), '');
    expect(locateLibrary(root)).toEqual({ library: path.join(prebuiltDir(root), PREBUILT_LIBRARY), pkgConfigDir: path.join(prebuiltDir(root), 'pkgconfig') });
  });

  test("the checkout's build comes first (a stale prebuilds/ folder cannot shadow it)", () => {
    expect(locateLibrary(ROOT).library).toBe(path.join(ROOT, 'bindings', 'c', 'build', 'libdora_node_api.so'));
  });

  test('without a prebuilt library or sources, the error says so and names DORA_NODE_API_LIB', () => {
    const root = installed('bare', {});
    expect(() => locateLibrary(root)).toThrow(/no prebuilt library for [\w-]+, no C sources to build it from\): point DORA_NODE_API_LIB at one/);
  });

  test('what building needs is named by its Debian package when missing', () => {
    expect(missingBuildTools({ PATH: path.join(temp, 'no-such-bin') })).toEqual(['a C compiler (gcc)', 'make', 'pkg-config']);
    expect(missingBuildTools({ ...process.env, PKG_CONFIG_PATH: '', PKG_CONFIG_LIBDIR: path.join(temp, 'no-pc') })).toEqual(['libzmq3-dev']);
    expect(missingBuildTools()).toEqual([]);
  });

  test('a failing build reports make’s own error', () => {
    const root = installed('broken', {});
    fs.mkdirSync(path.join(root, 'bindings', 'c'), { recursive: true });
    fs.writeFileSync(path.join(root, 'bindings', 'c', 'Makefile'), 'all:\n\t@echo "no rule for this" >&2; exit 2\n');
    expect(() => buildFromSources(root)).toThrow(/building the dora node library in .*broken.* failed \(make exited with 2\):\nno rule for this/);
  });
});

// where no library is prebuilt (linux-arm64: scripts/arm64-check.sh), the first use builds one from the packed sources
test('the C sources `npm pack` ships build the library, the C runtime and their pkg-config files', () => {
  const listing = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8' });
  expect(listing.status).toBe(0);
  const packed = (JSON.parse(listing.stdout) as { files: { path: string }[] }[])[0].files.map((f) => f.path);
  const root = installed('from-sources', {});
  for (const file of packed.filter((f) => f.startsWith('bindings/c/'))) {
    fs.mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    fs.copyFileSync(path.join(ROOT, file), path.join(root, file));
  }
  buildFromSources(root);
  const build = path.join(root, 'bindings', 'c', 'build');
  expect(locateLibrary(root)).toEqual({ library: path.join(build, 'libdora_node_api.so'), pkgConfigDir: path.join(build, 'pkgconfig') });
  for (const file of ['dora-runtime', 'libdora_operator_api_c.a', 'pkgconfig/dora-node-api.pc', 'pkgconfig/dora-operator-api.pc']) {
    expect(fs.existsSync(path.join(build, file))).toBe(true);
  }
}, 180_000);

describe('dora new: the dependency on dora-ts', () => {
  test('a checkout: the folder itself, which npm links', () => {
    expect(dependencySpec(ROOT)).toBe(`file:${ROOT}`);
  });

  test("installed in a project: that project's spec, a relative tarball path made absolute", () => {
    expect(dependencySpec(installed('tarball', { dependencies: { 'dora-ts': 'file:../dora-ts-1.2.3.tgz' } }))).toBe(`file:${path.join(temp, 'dora-ts-1.2.3.tgz')}`);
    expect(dependencySpec(installed('git', { devDependencies: { 'dora-ts': 'git+https://example.org/dora-ts.git#v1.2.3' } }))).toBe('git+https://example.org/dora-ts.git#v1.2.3');
    expect(dependencySpec(installed('registry', { dependencies: { 'dora-ts': '^1.2.0' } }))).toBe('^1.2.0');
  });

  test("installed without a spec in its project (--no-save): from the registry a version range, else what npm's lock recorded", () => {
    const lock = (resolved: string) => ({ packages: { 'node_modules/dora-ts': { version: '1.2.3', resolved } } });
    expect(dependencySpec(installed('unsaved', {}, lock('https://registry.npmjs.org/dora-ts/-/dora-ts-1.2.3.tgz')))).toBe('^1.2.3');
    expect(dependencySpec(installed('unsaved-file', {}, lock('file:../dora-ts-1.2.3.tgz')))).toBe(`file:${path.join(temp, 'dora-ts-1.2.3.tgz')}`);
  });

  test('installed globally (no project, no lock): the installed folder itself, which npm links', () => {
    const root = installed(path.join('global', 'lib'), undefined);
    expect(dependencySpec(root)).toBe(`file:${root}`);
  });
});

test('every public symbol of the node API (and every public member of its classes and interfaces) has a doc comment', () => {
  const entry = path.join(ROOT, 'node-api', 'index.ts');
  const program = ts.createProgram([entry], { module: ts.ModuleKind.Node16, moduleResolution: ts.ModuleResolutionKind.Node16, resolveJsonModule: true, strict: true, noEmit: true });
  const checker = program.getTypeChecker();
  const undocumented: string[] = [];
  const documented = (s: ts.Symbol) => ts.displayPartsToString(s.getDocumentationComment(checker)).trim() !== '';
  const exports = checker.getExportsOfModule(checker.getSymbolAtLocation(program.getSourceFile(entry)!)!);
  for (const exported of exports) {
    const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
    // names the API re-exports from protocol/ are documented there; they are checked the same way
    if (!documented(symbol)) undocumented.push(exported.name);
    if (!(symbol.flags & (ts.SymbolFlags.Class | ts.SymbolFlags.Interface))) continue;
    const ownMembers = [...(symbol.members?.values() ?? [])].filter((m) => {
      const decl = m.declarations?.[0];
      if (!decl || m.name === '__constructor' || m.name.startsWith('#')) return false;
      if (ts.getJSDocTags(decl).some((t) => t.tagName.text === 'internal')) return false;
      const flags = ts.getCombinedModifierFlags(decl as ts.Declaration);
      return !(flags & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected));
    });
    for (const m of ownMembers) if (!documented(m)) undocumented.push(`${exported.name}.${m.name}`);
  }
  expect(exports.length).toBeGreaterThan(5);
  expect(undocumented).toEqual([]);
});
