/**
 * SSZ types that hold every uint64 exactly. @lodestar/types declares slots, epochs, indices, gas limits and
 * timestamps as UintNum64 (a JS number): its fromJson refuses anything above 2^53-1, and a request for validator
 * index 2^53 would be refused although the spec allows it. `exactUint64(type)` is the same type with every
 * 8-byte UintNumberType swapped for UintBigintType: same serialization, same hash_tree_root, whole range.
 */
import {
  ContainerType,
  ListBasicType,
  ListCompositeType,
  UintBigintType,
  UintNumberType,
  VectorBasicType,
  VectorCompositeType,
  type Type,
} from "@chainsafe/ssz";

const UINT64_EXACT = new UintBigintType(8);
const converted = new WeakMap<object, unknown>();

/** `type` with every uint64 held as a bigint; the same object when it has no number-typed uint64. */
export function exactUint64<T>(type: T): T {
  const known = converted.get(type as object);
  if (known !== undefined) return known as T;
  const exact = convert(type as unknown as Type<unknown>) as unknown as T;
  converted.set(type as object, exact);
  return exact;
}

// biome-ignore lint/suspicious/noExplicitAny: SSZ type constructors are generic over their element types
type AnyType = any;

function convert(type: AnyType): AnyType {
  if (type instanceof UintNumberType) return type.byteLength === 8 ? UINT64_EXACT : type;
  if (type instanceof ContainerType) {
    const fields: Record<string, AnyType> = {};
    let changed = false;
    for (const [name, field] of Object.entries(type.fields as Record<string, AnyType>)) {
      fields[name] = exactUint64(field);
      if (fields[name] !== field) changed = true;
    }
    return changed ? new ContainerType(fields, type.opts) : type;
  }
  if (type instanceof ListBasicType || type instanceof ListCompositeType || type instanceof VectorBasicType || type instanceof VectorCompositeType) {
    const element = exactUint64(type.elementType);
    if (element === type.elementType) return type;
    if (type instanceof ListBasicType) return new ListBasicType(element, type.limit);
    if (type instanceof ListCompositeType) return new ListCompositeType(element, type.limit);
    if (type instanceof VectorBasicType) return new VectorBasicType(element, type.length);
    return new VectorCompositeType(element, type.length);
  }
  // Bytes, bits, booleans: nothing numeric inside.
  return type;
}
