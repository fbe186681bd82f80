/**
 * A minimal typed event source. Listeners get one payload object; `on()` returns the function that
 * removes the listener, so a feature's stop() can undo exactly what its start() added. A throwing
 * listener is reported to `onListenerError` instead of breaking the driver that emitted the event.
 */
export type Unsubscribe = () => void;

export interface EventSource<E extends object> {
  on<K extends keyof E>(event: K, listener: (payload: E[K]) => void): Unsubscribe;
}

export class TypedEvents<E extends object> implements EventSource<E> {
  private readonly listeners = new Map<keyof E, Set<(payload: never) => void>>();

  constructor(private readonly onListenerError: (err: unknown, event: keyof E) => void = () => {}) {}

  on<K extends keyof E>(event: K, listener: (payload: E[K]) => void): Unsubscribe {
    let set = this.listeners.get(event);
    if (!set) {
      set = new Set();
      this.listeners.set(event, set);
    }
    set.add(listener as (payload: never) => void);
    return () => {
      set.delete(listener as (payload: never) => void);
    };
  }

  emit<K extends keyof E>(event: K, payload: E[K]): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        (fn as (p: E[K]) => void)(payload);
      } catch (err) {
        this.onListenerError(err, event);
      }
    }
  }

  listenerCount(event?: keyof E): number {
    if (event !== undefined) return this.listeners.get(event)?.size ?? 0;
    let n = 0;
    for (const set of this.listeners.values()) n += set.size;
    return n;
  }

  clear(): void {
    this.listeners.clear();
  }
}
