// Integration tests spawn the compiled CLI and nodes import the compiled package,
// so make sure dist/ reflects the sources before any test runs.
const { execFileSync } = require('node:child_process');
const path = require('node:path');
module.exports = async () => {
  const root = path.resolve(__dirname, '../..');
  execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', path.join(root, 'tsconfig.json')], { cwd: root, stdio: 'inherit' });
};
