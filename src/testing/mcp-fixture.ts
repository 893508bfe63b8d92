import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { z } from 'zod';

/**
 * A real MCP server (the SDK's own) for the proxy's fault tests: tools whose description comes from
 * the environment (to change a definition between runs), one that crashes the process and one that
 * never answers. Test support only: `node dist/testing/mcp-fixture.js`.
 */
const server = new McpServer({ name: 'fixture', version: '1.0.0' });
server.registerTool('echo', { description: process.env.FIXTURE_ECHO_DESCRIPTION ?? 'Echoes the text back', inputSchema: { text: z.string() }, annotations: { readOnlyHint: true } }, ({ text }) => ({ content: [{ type: 'text', text }] }));
server.registerTool('crash', { description: 'Exits the server process', inputSchema: {}, annotations: { readOnlyHint: true } }, () => process.exit(3));
server.registerTool('hang', { description: 'Never answers', inputSchema: {}, annotations: { readOnlyHint: true } }, () => new Promise(() => undefined));
await server.connect(new StdioServerTransport());
