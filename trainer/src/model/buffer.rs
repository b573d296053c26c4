//! Named views into one flat buffer (llm.c's `ParameterTensors` / `ActivationTensors`): a
//! struct of slices cut, in field order, from a single `Vec<f32>`.

/// Cut `buf` into consecutive slices of the given lengths (they must sum to `buf.len()`).
pub fn split_mut<'a>(mut buf: &'a mut [f32], sizes: &[usize]) -> Vec<&'a mut [f32]> {
    let mut out = Vec::with_capacity(sizes.len());
    for &n in sizes {
        let (head, tail) = std::mem::take(&mut buf).split_at_mut(n);
        out.push(head);
        buf = tail;
    }
    assert!(buf.is_empty(), "buffer longer than its named views");
    out
}

/// Cut `buf` into consecutive read-only slices of the given lengths.
pub fn split<'a>(mut buf: &'a [f32], sizes: &[usize]) -> Vec<&'a [f32]> {
    let mut out = Vec::with_capacity(sizes.len());
    for &n in sizes {
        let (head, tail) = buf.split_at(n);
        out.push(head);
        buf = tail;
    }
    assert!(buf.is_empty(), "buffer longer than its named views");
    out
}

/// Layer `l`'s part of a tensor stacked over layers, each part `n` long.
pub fn layer(t: &[f32], l: usize, n: usize) -> &[f32] {
    &t[l * n..(l + 1) * n]
}

/// Mutable [`layer`].
pub fn layer_mut(t: &mut [f32], l: usize, n: usize) -> &mut [f32] {
    &mut t[l * n..(l + 1) * n]
}

/// Define a struct with one field per named tensor, generic over the slice type, with
/// constructors that cut it from a flat buffer.
macro_rules! named_tensors {
    ($(#[$doc:meta])* $name:ident { $($(#[$fdoc:meta])* $field:ident),* $(,)? }) => {
        $(#[$doc])*
        pub struct $name<S> {
            $($(#[$fdoc])* pub $field: S,)*
        }

        impl $name<()> {
            /// Field names, in buffer order.
            pub const NAMES: &'static [&'static str] = &[$(stringify!($field)),*];
        }

        impl<'a> $name<&'a [f32]> {
            /// Read-only views; `sizes` in field order.
            pub fn view(buf: &'a [f32], sizes: &[usize]) -> Self {
                let mut it = $crate::model::buffer::split(buf, sizes).into_iter();
                $name { $($field: it.next().expect("one size per tensor"),)* }
            }
        }

        impl<'a> $name<&'a mut [f32]> {
            /// Mutable views; `sizes` in field order.
            pub fn view_mut(buf: &'a mut [f32], sizes: &[usize]) -> Self {
                let mut it = $crate::model::buffer::split_mut(buf, sizes).into_iter();
                $name { $($field: it.next().expect("one size per tensor"),)* }
            }
        }
    };
}
pub(crate) use named_tensors;
