import picomatch from 'picomatch';

/**
 * Credential file names, and which of them a glob can match: a glob read or write (`cat .en?`,
 * Grep with `glob: ".env*"`) is also judged as each credential file it could name.
 */

/** File names that hold credentials: a glob that can match one of them is judged as that file too. */
export const CREDENTIAL_NAMES = ['.env', '.env.local', '.env.production', '.env.development', '.env.staging', '.env.test', '.envrc',
  'id_rsa', 'id_ed25519', 'id_ecdsa', 'id_dsa', 'credentials', '.netrc', '.pgpass', '.git-credentials', '.npmrc', '.pypirc',
  '.my.cnf', 'secrets.yml', 'secrets.yaml', 'secrets.toml', '.vault-token', '.bash_history', '.zsh_history', 'terraform.tfstate'];


const credentialMatches = new Map<string, string[]>();

/** The credential file names a bash glob (one path segment) can match; cached per glob. */
/** True when a directory holds no pattern but `**` segments (credential globs match through those). */
export function plainOrDeep(dir: string): boolean {
  return !/[*?[]/.test(dir.replace(/\/\*\*(?=\/|$)/g, ''));
}

export function credentialNamesMatching(glob: string): string[] {
  // a bare `*` names every visible file, no credential in particular (and never a dotfile)
  if (/^\*+$/.test(glob)) return [];
  let names = credentialMatches.get(glob);
  if (names === undefined) {
    const matches = picomatch(glob, { dot: false });
    names = CREDENTIAL_NAMES.filter((n) => matches(n));
    if (credentialMatches.size > 1000) credentialMatches.clear();
    credentialMatches.set(glob, names);
  }
  return names;
}

