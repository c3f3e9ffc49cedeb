/** Types of the cluster-key-slot package (CRC16 hash slot of a Redis key, honouring {hash tags}). */
declare module 'cluster-key-slot' {
  function calculateSlot(key: string | Buffer): number;
  export = calculateSlot;
}
