import { DataType, Type } from 'apache-arrow';

/**
 * An Arrow type held by a field, vector or dictionary. apache-arrow declares these `any` on
 * untyped schemas; the check turns that into a DataType without a cast.
 */
export function asDataType(type: unknown): DataType {
  if (!isDataType(type)) throw new TypeError(`expected an Arrow DataType, got ${typeof type}`);
  return type;
}

function isDataType(value: unknown): value is DataType {
  return value instanceof DataType;
}

/** The type of a field or vector. */
export function typeOf(holder: { readonly type: unknown }): DataType {
  return asDataType(holder.type);
}

/** A type's name for messages: `Timestamp`, `FixedSizeList`, `Dictionary`. */
export function arrowTypeName(type: DataType): string {
  return Type[type.typeId] ?? `Arrow type ${type.typeId}`;
}
