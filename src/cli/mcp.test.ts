import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { serverName } from './mcp.js';

describe('gatehouse mcp: the server name from its command', () => {
  it('takes the package or program that names a server, without its decorations', () => {
    const cases: [string[], string][] = [
      [['npx', '-y', '@modelcontextprotocol/server-filesystem', '/srv'], 'filesystem'],
      [['node', '/x/node_modules/@modelcontextprotocol/server-everything/dist/index.js', 'stdio'], 'everything'],
      [['uvx', 'mcp-server-git'], 'git'],
      [['python', '-m', 'mcp_server_fetch'], 'fetch'],
      [['npx', '-y', '@acme/github-mcp@1.2.0'], 'github'],
      [['my-tool'], 'my-tool'],
    ];
    for (const [command, name] of cases) assert.equal(serverName(command), name, command.join(' '));
  });
});
