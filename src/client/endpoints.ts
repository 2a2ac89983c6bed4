/** Default endpoints, in a module of their own so that flags can show them without loading gRPC. */
export const DEFAULT_ADMIN_ENDPOINT = 'localhost:8981';
export const DEFAULT_PROXY_ENDPOINT = 'localhost:50090';
