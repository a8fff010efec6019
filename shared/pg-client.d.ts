/**
 * node-postgres's Client and its type-parser table, imported on their own (`pg/lib/...`, which pg's
 * package exports): the package entry also loads the connection pool and the native binding, which
 * pgwarden never uses and the Lambda bundles would carry.
 */
declare module 'pg/lib/client.js' {
  import type { Client } from 'pg';

  const ClientClass: typeof Client;
  export default ClientClass;
}

declare module 'pg/lib/type-overrides.js' {
  import type { CustomTypesConfig } from 'pg';

  class TypeOverrides implements CustomTypesConfig {
    setTypeParser(oid: number, format: 'text' | 'binary', parse: (value: string) => unknown): void;
    getTypeParser: CustomTypesConfig['getTypeParser'];
  }
  export default TypeOverrides;
}
