//! A tick's outgoing packets in one reused buffer: the media path hands packets on without a
//! heap allocation per packet (a `Vec<Vec<u8>>` would allocate each one).

/// Packets laid end to end in one buffer; [`Packets::clear`] keeps the capacity.
#[derive(Debug, Default, Clone)]
pub struct Packets {
    data: Vec<u8>,
    /// Where each packet ends in `data`.
    ends: Vec<usize>,
}

impl Packets {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn clear(&mut self) {
        self.data.clear();
        self.ends.clear();
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Appends a copy of `packet`.
    pub fn push(&mut self, packet: &[u8]) {
        self.data.extend_from_slice(packet);
        self.ends.push(self.data.len());
    }

    /// The `i`th packet.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        self.data.get(start..end)
    }

    /// The packets in the order they were pushed.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        (0..self.ends.len()).filter_map(|i| self.get(i))
    }

    /// Keeps only the first `n` packets.
    pub fn truncate(&mut self, n: usize) {
        if n < self.ends.len() {
            self.data
                .truncate(if n == 0 { 0 } else { self.ends[n - 1] });
            self.ends.truncate(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_keep_their_bytes_and_order_and_reuse_the_buffer() {
        let mut p = Packets::new();
        assert!(p.is_empty() && p.get(0).is_none());
        p.push(&[1, 2, 3]);
        p.push(&[]);
        p.push(&[4]);
        assert_eq!(p.len(), 3);
        let all: Vec<&[u8]> = p.iter().collect();
        assert_eq!(all, vec![&[1, 2, 3][..], &[][..], &[4][..]]);
        p.truncate(1);
        assert_eq!(p.iter().collect::<Vec<_>>(), vec![&[1, 2, 3][..]]);
        let cap = p.data.capacity();
        p.clear();
        assert!(p.is_empty());
        p.push(&[9; 3]);
        assert_eq!(p.data.capacity(), cap);
        assert_eq!(p.get(0), Some(&[9u8; 3][..]));
    }
}
