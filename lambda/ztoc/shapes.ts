// Keeps the hidden classes of per-layer objects alive between layers.
//
// V8 specializes optimized code to the hidden classes ("maps") of the objects it has seen, and the map
// of a class instance is reachable from its class only through weak transitions: once the last instance
// is gone, a GC frees the map and discards all optimized code that checked for it. Every object of a
// layer dies when the layer ends (the layer worker even collects garbage then), so without this each
// layer re-optimized the same hot code: four 240 MB layers in one worker took 358 TurboFan compiles
// instead of 222, about 0.4 s of extra CPU. One small instance of each such class, kept here, is enough.
const anchors: object[] = [];

/** Keeps `instance` (and so its hidden class) alive for the life of the thread. */
export function keepShape(instance: object): void {
  anchors.push(instance);
}
