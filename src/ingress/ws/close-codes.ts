/**
 * WebSocket close codes pushwire sends, as a contract (docs/protocol.md). 1xxx are RFC 6455;
 * 3000-3499 mean "reconnect, this node or another will take you".
 */
export const CloseCode = {
  NORMAL: 1000,
  PROTOCOL_ERROR: 1002,
  INVALID_PAYLOAD: 1007,
  MESSAGE_TOO_BIG: 1009,
  /** A bug met while handling the client's frame: logged, this connection closed, the node goes on. */
  INTERNAL_ERROR: 1011,
  SERVICE_RESTART: 1012,
  PING_TIMEOUT: 3001,
  SLOW_CONSUMER: 3008,
} as const;
