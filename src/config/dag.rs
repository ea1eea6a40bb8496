//! A pipeline's tasks as a dependency graph.
//!
//! The graph algorithms work on indices of name-sorted nodes, so that the
//! config walker (which must report every problem, with spans, before any
//! `Task` exists) and [`Dag::new`] share one implementation, and so that
//! "ties broken by name" falls out of comparing indices.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::{Task, TaskName};

/// The tasks of one pipeline, acyclic, with every `needs` resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dag {
    tasks: BTreeMap<TaskName, Task>,
    order: Vec<TaskName>,
    dependents: BTreeMap<TaskName, Vec<TaskName>>,
}

/// Why a set of tasks does not form a valid graph.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DagError {
    #[error("task \"{0}\" is defined twice")]
    DuplicateTask(TaskName),
    #[error("task \"{task}\" needs unknown task \"{need}\"")]
    UnknownNeed { task: TaskName, need: TaskName },
    #[error("task \"{task}\" needs \"{need}\" more than once")]
    DuplicateNeed { task: TaskName, need: TaskName },
    /// The path starts and ends with the same task.
    #[error("dependency cycle: {}", cycle_text(.0.iter().map(TaskName::as_str)))]
    Cycle(Vec<TaskName>),
}

/// `a -> b -> a`, the form every cycle is reported in.
pub(crate) fn cycle_text<'a>(path: impl Iterator<Item = &'a str>) -> String {
    path.collect::<Vec<_>>().join(" -> ")
}

impl Dag {
    /// Builds the graph, refusing unknown or repeated needs and cycles (the
    /// first cycle found is reported; the config parser reports all of them).
    pub fn new(tasks: impl IntoIterator<Item = Task>) -> Result<Dag, DagError> {
        let mut by_name = BTreeMap::new();
        for task in tasks {
            if by_name.contains_key(&task.name) {
                return Err(DagError::DuplicateTask(task.name));
            }
            by_name.insert(task.name.clone(), task);
        }
        let index: BTreeMap<&TaskName, usize> =
            by_name.keys().enumerate().map(|(i, n)| (n, i)).collect();
        let mut edges = Vec::with_capacity(by_name.len());
        for task in by_name.values() {
            let mut out = Vec::with_capacity(task.needs.len());
            for need in &task.needs {
                let Some(&j) = index.get(need) else {
                    return Err(DagError::UnknownNeed {
                        task: task.name.clone(),
                        need: need.clone(),
                    });
                };
                if out.contains(&j) {
                    return Err(DagError::DuplicateNeed {
                        task: task.name.clone(),
                        need: need.clone(),
                    });
                }
                out.push(j);
            }
            edges.push(out);
        }
        let names: Vec<&TaskName> = by_name.keys().collect();
        if let Some(cycle) = cycles(&edges).into_iter().next() {
            let path = cycle
                .iter()
                .chain(cycle.first())
                .map(|&i| names[i].clone())
                .collect();
            return Err(DagError::Cycle(path));
        }
        let order: Vec<TaskName> = topo_order(&edges)
            .into_iter()
            .map(|i| names[i].clone())
            .collect();
        let mut dependents: BTreeMap<TaskName, Vec<TaskName>> = BTreeMap::new();
        for task in by_name.values() {
            for need in &task.needs {
                dependents
                    .entry(need.clone())
                    .or_default()
                    .push(task.name.clone());
            }
        }
        // Tasks are visited in name order, so each list is already sorted.
        Ok(Dag {
            tasks: by_name,
            order,
            dependents,
        })
    }

    /// Every task, dependencies before dependents; among tasks that are ready
    /// at the same time, the alphabetically first comes first.
    pub fn order(&self) -> &[TaskName] {
        &self.order
    }

    /// The task called `name`.
    ///
    /// # Panics
    /// If `name` is not in this graph: names come from the graph itself
    /// ([`Dag::order`], [`Task::needs`], [`Dag::dependents`]); use
    /// [`Dag::find`] for a name typed by a user.
    pub fn get(&self, name: &TaskName) -> &Task {
        match self.tasks.get(name) {
            Some(task) => task,
            None => panic!("task {name:?} is not part of this pipeline"),
        }
    }

    pub fn find(&self, name: &str) -> Option<&Task> {
        self.tasks.get(name)
    }

    /// Tasks in [`Dag::order`].
    pub fn iter(&self) -> impl Iterator<Item = &Task> + '_ {
        self.order.iter().filter_map(|n| self.tasks.get(n))
    }

    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Tasks that list `name` in their `needs`, sorted by name: what must be
    /// skipped when `name` fails.
    pub fn dependents(&self, name: &TaskName) -> &[TaskName] {
        self.dependents.get(name).map_or(&[], Vec::as_slice)
    }
}

/// Kahn's algorithm over `edges[i]` = the nodes `i` needs. With the nodes
/// numbered in name order, always taking the smallest ready index gives the
/// deterministic order. Nodes on or behind a cycle are left out.
pub(crate) fn topo_order(edges: &[Vec<usize>]) -> Vec<usize> {
    let n = edges.len();
    let mut waiting: Vec<usize> = edges.iter().map(Vec::len).collect();
    let mut dependents = vec![Vec::new(); n];
    for (i, needs) in edges.iter().enumerate() {
        for &j in needs {
            dependents[j].push(i);
        }
    }
    let mut ready: BTreeSet<usize> = (0..n).filter(|&i| waiting[i] == 0).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for &d in &dependents[i] {
            waiting[d] -= 1;
            if waiting[d] == 0 {
                ready.insert(d);
            }
        }
    }
    order
}

/// One cycle per strongly connected component that has one, each given as a
/// path from its alphabetically first node (not repeated at the end), taking
/// the shortest way back. Sorted by that first node.
///
/// A component can hold several elementary cycles; reporting one is enough to
/// show the user where it is, and fixing it exposes any other.
pub(crate) fn cycles(edges: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let mut found: Vec<Vec<usize>> = strongly_connected(edges)
        .into_iter()
        .filter_map(|comp| {
            let start = *comp.iter().min()?;
            if comp.len() == 1 && !edges[start].contains(&start) {
                return None;
            }
            let members: BTreeSet<usize> = comp.into_iter().collect();
            shortest_cycle(edges, start, &members)
        })
        .collect();
    found.sort();
    found
}

/// Breadth-first search from `start` back to itself inside one component.
fn shortest_cycle(
    edges: &[Vec<usize>],
    start: usize,
    members: &BTreeSet<usize>,
) -> Option<Vec<usize>> {
    let mut parent: BTreeMap<usize, usize> = BTreeMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(u) = queue.pop_front() {
        let mut next: Vec<usize> = edges[u].clone();
        next.sort_unstable();
        for w in next {
            if w == start {
                let mut path = vec![u];
                let mut at = u;
                while at != start {
                    at = parent[&at];
                    path.push(at);
                }
                path.reverse();
                return Some(path);
            }
            if members.contains(&w) && !parent.contains_key(&w) {
                parent.insert(w, u);
                queue.push_back(w);
            }
        }
    }
    None
}

/// Tarjan's algorithm, iterative so a long chain of tasks cannot overflow
/// the stack.
fn strongly_connected(edges: &[Vec<usize>]) -> Vec<Vec<usize>> {
    const UNSEEN: usize = usize::MAX;
    let n = edges.len();
    let mut index = vec![UNSEEN; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut next = 0;
    let mut components = Vec::new();
    for root in 0..n {
        if index[root] != UNSEEN {
            continue;
        }
        index[root] = next;
        low[root] = next;
        next += 1;
        stack.push(root);
        on_stack[root] = true;
        let mut calls: Vec<(usize, usize)> = vec![(root, 0)];
        while let Some(frame) = calls.last_mut() {
            let v = frame.0;
            if let Some(&w) = edges[v].get(frame.1) {
                frame.1 += 1;
                if index[w] == UNSEEN {
                    index[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    calls.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            calls.pop();
            if let Some(&(u, _)) = calls.last() {
                low[u] = low[u].min(low[v]);
            }
            if low[v] == index[v] {
                let mut comp = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    comp.push(w);
                    if w == v {
                        break;
                    }
                }
                components.push(comp);
            }
        }
    }
    components
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(name: &str, needs: &[&str]) -> Task {
        Task {
            name: TaskName::new(name).unwrap(),
            command: vec!["true".into()],
            needs: needs.iter().map(|n| TaskName::new(*n).unwrap()).collect(),
            env: BTreeMap::new(),
            retries: 0,
            timeout: None,
            image: None,
            resources: Default::default(),
            env_from: vec![],
            node_selector: BTreeMap::new(),
            tolerations: vec![],
            service_account: None,
            image_pull_secrets: vec![],
            workdir: None,
        }
    }

    fn names(v: &[TaskName]) -> Vec<&str> {
        v.iter().map(TaskName::as_str).collect()
    }

    #[test]
    fn order_is_topological_with_ties_by_name() {
        // Declared in an order unrelated to the result on purpose.
        let dag = Dag::new([
            task("publish", &["train", "report"]),
            task("report", &["clean"]),
            task("train", &["clean", "fetch"]),
            task("fetch", &[]),
            task("clean", &[]),
            task("audit", &[]),
        ])
        .unwrap();
        assert_eq!(
            names(dag.order()),
            ["audit", "clean", "fetch", "report", "train", "publish"]
        );
        let iter: Vec<&str> = dag.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(iter, names(dag.order()));
        let clean = TaskName::new("clean").unwrap();
        assert_eq!(names(dag.dependents(&clean)), ["report", "train"]);
        assert!(dag
            .dependents(&TaskName::new("publish").unwrap())
            .is_empty());
        assert_eq!(dag.get(&clean).name, clean);
        assert!(dag.find("nope").is_none());
        assert_eq!(dag.len(), 6);
    }

    #[test]
    fn rejects_bad_graphs() {
        let err = Dag::new([task("a", &["b"]), task("b", &["a"])]).unwrap_err();
        assert_eq!(err.to_string(), "dependency cycle: a -> b -> a");
        let err = Dag::new([task("a", &["a"])]).unwrap_err();
        assert_eq!(err.to_string(), "dependency cycle: a -> a");
        let err = Dag::new([task("a", &["zz"])]).unwrap_err();
        assert_eq!(err.to_string(), "task \"a\" needs unknown task \"zz\"");
        let err = Dag::new([task("a", &["b", "b"]), task("b", &[])]).unwrap_err();
        assert_eq!(err.to_string(), "task \"a\" needs \"b\" more than once");
        let err = Dag::new([task("a", &[]), task("a", &[])]).unwrap_err();
        assert_eq!(err.to_string(), "task \"a\" is defined twice");
    }

    #[test]
    fn cycles_of_length_one_to_three() {
        // 0 -> 0; 1 -> 2 -> 1; 3 -> 4 -> 5 -> 3; 6 needs the last cycle but is not on it.
        let edges = vec![
            vec![0],
            vec![2],
            vec![1],
            vec![4],
            vec![5],
            vec![3],
            vec![3],
        ];
        assert_eq!(cycles(&edges), vec![vec![0], vec![1, 2], vec![3, 4, 5]]);
        assert!(topo_order(&edges).is_empty());
        // The shortest way back is chosen: 0 -> 1 -> 0, not 0 -> 2 -> 3 -> 0.
        let edges = vec![vec![2, 1], vec![0], vec![3], vec![0]];
        assert_eq!(cycles(&edges), vec![vec![0, 1]]);
    }

    #[test]
    fn long_chain_does_not_overflow() {
        let n = 100_000;
        let mut edges: Vec<Vec<usize>> = (0..n)
            .map(|i| if i == 0 { vec![] } else { vec![i - 1] })
            .collect();
        assert!(cycles(&edges).is_empty());
        assert_eq!(topo_order(&edges).len(), n);
        edges[0] = vec![n - 1];
        assert_eq!(cycles(&edges).len(), 1);
        assert_eq!(cycles(&edges)[0].len(), n);
    }
}
